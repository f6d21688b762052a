// For comparison (BENCH_EXTRA_ENTRY=bench/empty-worker-with-log.mjs): an empty worker that, like
// ours, reads the body and writes one JSON log line per request.
export default {
  async fetch(request) {
    const body = await request.text();
    console.log(JSON.stringify({ method: 'POST', path: '/', function: 'function/preaccesstoken', user_id: '312909075212468632', org_id: 'org-1', outcome: 'ok', status: 200, claims: ['permissions', 'my:zitadel:grants', 'groups', 'urn:custom:ms_access_token'], roles: 20, cache: 'hit', duration_ms: 0, n: body.length }));
    return new Response('{}', { headers: { 'content-type': 'application/json' } });
  },
};
