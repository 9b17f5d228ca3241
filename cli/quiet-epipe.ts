/**
 * `msgtrace jobs | head -1`: once the reader has what it wants it closes the
 * pipe, and the next write fails with EPIPE — an 'error' event on stdout
 * that, unhandled, crashes the process with a stack trace. A command whose
 * reader left has nothing more to say: it exits at once, quietly, with 0.
 * (Node ignores SIGPIPE, so the shell's usual silent death is done here.)
 */
const guarded = new WeakSet<NodeJS.WriteStream>();

export function exitQuietlyOnClosedStdout(stream: NodeJS.WriteStream = process.stdout): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
