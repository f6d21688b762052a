// Reads a .dev.vars / .env file: KEY=value lines, `#` comments, optional single or double quotes.
import { existsSync, readFileSync } from 'node:fs';

export function readDotenv(path) {
  if (!existsSync(path)) return {};
  const vars = {};
  for (const raw of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 1) continue;
    const key = line.slice(0, eq).replace(/^export\s+/, '').trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
      value = value.slice(1, -1);
    }
    vars[key] = value;
  }
  return vars;
}
