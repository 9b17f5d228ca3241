/**
 * Reading and writing cassette files (JSON). A cassette is written whole,
 * through a temporary file renamed into place, only after a last check that
 * its text holds no credential.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MsgtraceError, errorCodes } from '../../errors/msgtrace-error.ts';
import type { Cassette } from './cassette.types.ts';
import { assertNoSecrets } from './redaction.ts';

/** Checks the shape every reader relies on; `where` names the file in the message. */
export function parseCassette(raw: unknown, where: string): Cassette {
  const problem = (what: string) => new MsgtraceError(errorCodes.configInvalid, `${where} is not a msgtrace cassette: ${what}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw problem('expected a JSON object');
  const record = raw as Record<string, unknown>;
  if (typeof record.name !== 'string') throw problem('no "name"');
  const expect = record.expect as Record<string, unknown> | undefined;
  if (typeof expect !== 'object' || expect === null) throw problem('no "expect" section');
  if (!Array.isArray(expect.trail) || typeof expect.summary !== 'object' || expect.summary === null) throw problem('"expect" needs "trail" and "summary"');
  if (record.http !== undefined && !Array.isArray(record.http)) throw problem('"http" must be a list of exchanges');
  if (record.exchanges !== undefined && !Array.isArray(record.exchanges)) throw problem('"exchanges" must be a list');
  if (record.format !== undefined && !/^msgtrace-cassette\/1$/.test(String(record.format))) {
    throw problem(`format ${JSON.stringify(record.format)} is not one this msgtrace reads (msgtrace-cassette/1)`);
  }
  return raw as Cassette;
}

export async function readCassetteFile(file: string | URL): Promise<Cassette> {
  const path = typeof file === 'string' ? file : fileURLToPath(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new MsgtraceError(errorCodes.configInvalid, `cannot read cassette ${path}: ${(error as Error).message}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new MsgtraceError(errorCodes.configInvalid, `${path} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return parseCassette(raw, path);
}

/** The cassette as written: pretty JSON with a final newline. */
export function cassetteText(cassette: Cassette): string {
  return `${JSON.stringify(cassette, null, 2)}\n`;
}

/**
 * Writes the cassette to `path` (through `path.tmp-<pid>`, then a rename),
 * refusing — before anything is written — a text that contains one of
 * `secrets` or anything shaped like a credential.
 */
export async function writeCassetteFile(path: string, cassette: Cassette, secrets: ReadonlyArray<string>): Promise<{ bytes: number }> {
  const text = cassetteText(cassette);
  assertNoSecrets(basename(path), text, secrets);
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, text, { mode: 0o600 });
  await rename(temporary, path);
  return { bytes: Buffer.byteLength(text) };
}
