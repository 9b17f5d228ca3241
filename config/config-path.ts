/**
 * Key paths as a config problem names them: `inputs[0].retryRules.limit`,
 * `inputs.myId.interval`, `''` for the file as a whole.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : joinPath(text, String(key))), '');
}

export const joinPath = (base: string, key: string): string => (base === '' ? key : `${base}.${key}`);
