// The floor of the runtime benchmark: a worker that answers `{}` at once, served by the same
// wrangler dev as ours, so the ratio of the two latencies shows what our worker adds.
export default {
  async fetch() {
    return new Response('{}', { headers: { 'content-type': 'application/json' } });
  },
};
