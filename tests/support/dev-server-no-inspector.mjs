// `wrangler dev` without the DevTools inspector, for the benchmark (startWorker({ inspector: false })).
// The CLI cannot turn the inspector off; wrangler's own dev server API can. Everything else is the
// same dev server: the same miniflare, workerd, proxy and log output.
//
//   node dev-server-no-inspector.mjs <wrangler.toml> <port> <state dir> <log level>
import { unstable_startWorker } from 'wrangler';

const [config, port, persist, logLevel] = process.argv.slice(2);
const worker = await unstable_startWorker({
  config,
  dev: { server: { hostname: '127.0.0.1', port: Number(port) }, inspector: false, persist, logLevel },
});
await worker.ready;
process.on('SIGTERM', () => worker.dispose().finally(() => process.exit(0)));
