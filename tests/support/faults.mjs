// Injected faults, shared by the fake upstreams. A fault is
//   { status, body, headers, delayMs, hang, drop, stream (bytes, sent without Content-Length), times }
// and applies to `times` requests (all, if absent).

/** Takes the first fault that still applies (matching `applies`), counting it down. */
export function takeFault(faults, applies = () => true) {
  const fault = faults.find((f) => applies(f) && (f.times === undefined || f.times > 0));
  if (fault && fault.times !== undefined) fault.times -= 1;
  return fault;
}

/**
 * Answers `res` as `fault` says. Resolves true when the request was handled (answered, dropped
 * or left hanging until the server closes), false when the fault only delayed it.
 */
export async function applyFault(fault, req, res, defaultBody) {
  if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
  if (fault.hang) return true;
  if (fault.drop) {
    req.socket.destroy();
    return true;
  }
  const headers = { 'content-type': 'application/json', ...(fault.headers ?? {}) };
  if (fault.stream) {
    res.writeHead(fault.status ?? 200, headers);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    for (let sent = 0; sent < fault.stream && !res.destroyed; sent += chunk.length) {
      if (!res.write(chunk)) await drainedOrClosed(res);
    }
    res.end();
    return true;
  }
  if (fault.status) {
    res.writeHead(fault.status, headers);
    res.end(fault.body ?? defaultBody);
    return true;
  }
  return false;
}

/** Resolves when `res` can take more or is closed, leaving no listener behind. */
function drainedOrClosed(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}
