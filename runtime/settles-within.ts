/**
 * True when `work` settled (either way) within `ms`. Shutdown paths use it
 * so a vanished NATS or a stalled socket bounds how long a command lingers
 * instead of holding it open until the peer gives up.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((done) => {
    timer = setTimeout(() => done(false), ms);
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
