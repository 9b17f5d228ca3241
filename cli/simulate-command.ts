import { Command, InvalidArgumentError, Option } from 'commander';
import { parseFaultFlag, type FaultRule } from '../simulator/fault-plan.ts';
import { startSimulator } from '../simulator/start-simulator.ts';

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got '${value}'.`);
    }
    return n;
  };
}

function collectFault(spec: string, previous: FaultRule[]): FaultRule[] {
  try {
    return [...previous, parseFaultFlag(spec)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function waitForStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

interface SimulateFlags {
  port: number;
  host: string;
  seed: number;
  recordsPerHour: number;
  days: number;
  tokenLifetime: number;
  pageLatencyMs: number;
  pageCacheMb: number;
  fault: FaultRule[];
  rwsNextLink: 'absolute' | 'relative' | 'none';
  rwsReceivedZ: 'always' | 'never' | 'mixed';
  rwsVerboseBareArray?: boolean;
  stateDir?: string;
}

/**
 * `msgtrace simulate`: the Office 365 stand-in as a process. It prints ONE
 * JSON line on stdout — the URLs, the CA to trust and the registered app's
 * credentials (the simulated tenant's fake secret: this line is the one place
 * it is shown, by design) — then serves until SIGINT/SIGTERM, so a script or
 * test can read a line and go.
 */
export function simulateCommand(): Command {
  return new Command('simulate')
    .description('Serve a simulated Office 365 tenant (Graph + Reporting Web Service + tokens) over HTTPS on loopback; prints one JSON line, then serves until SIGINT/SIGTERM.')
    .addOption(new Option('--port <port>', 'HTTPS port (0 = any free port)').default(0).argParser(integer('--port', 0)))
    .addOption(new Option('--host <host>', 'address to listen on').default('127.0.0.1'))
    .addOption(new Option('--seed <n>', 'tenant seed: same seed, same tenant and rows').default(1).argParser(integer('--seed', 0)))
    .addOption(new Option('--records-per-hour <n>', 'average trace rows per hour').default(600).argParser(integer('--records-per-hour', 0)))
    .addOption(new Option('--days <d>', 'retention in days').default(10).argParser(integer('--days', 1)))
    .addOption(new Option('--token-lifetime <s>', 'access token lifetime (expires_in)').default(3599).argParser(integer('--token-lifetime', 1)))
    .addOption(new Option('--page-latency-ms <ms>', 'delay before each data page').default(0).argParser(integer('--page-latency-ms', 0)))
    .addOption(new Option('--page-cache-mb <mb>', "keep rendered Graph pages of settled windows (older than 24 h) up to this many MB, so serving them again costs no CPU (the bench's setting)").default(0).argParser(integer('--page-cache-mb', 0)))
    .addOption(new Option('--fault <spec>', "inject a fault, repeatable, e.g. 'throttle:p=0.1,retryAfter=5', 'error503:nth=3+4'").default([]).argParser(collectFault))
    .addOption(new Option('--rws-next-link <mode>', 'RWS odata.nextLink form').choices(['absolute', 'relative', 'none']).default('absolute'))
    .addOption(new Option('--rws-received-z <mode>', "RWS Received: trailing Z always, never or mixed").choices(['always', 'never', 'mixed']).default('always'))
    .addOption(new Option('--rws-verbose-bare-array', 'RWS verbose envelope: rows directly under d when $top is given'))
    .addOption(new Option('--state-dir <dir>', 'keep the PKI here across runs (default: a temporary directory removed on exit)'))
    .action(async (flags: SimulateFlags) => {
      const simulator = await startSimulator({
        port: flags.port,
        host: flags.host,
        seed: flags.seed,
        recordsPerHour: flags.recordsPerHour,
        days: flags.days,
        tokenLifetimeS: flags.tokenLifetime,
        pageLatencyMs: flags.pageLatencyMs,
        pageCacheMb: flags.pageCacheMb,
        faults: flags.fault,
        rws: { nextLink: flags.rwsNextLink, receivedZ: flags.rwsReceivedZ, verboseBareArray: flags.rwsVerboseBareArray === true },
        ...(flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {}),
      });
      process.stdout.write(`${JSON.stringify(simulator.describe())}\n`);
      const signal = await waitForStopSignal();
      process.stderr.write(`msgtrace simulate: ${signal} received, stopping\n`);
      await simulator.close();
    });
}
