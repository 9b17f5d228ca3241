import type { PlanType } from '../../config/schema.ts';

export interface CloudEndpoints {
  /** Host of the Entra ID authority (what MSAL lists in `knownAuthorities`). */
  readonly loginHost: string;
  /** `https://<loginHost>` or the `loginUrl` override, without trailing slash. */
  readonly loginBase: string;
  /** Graph host, or null where Graph has no message trace (GCC High, DoD). */
  readonly graphHost: string | null;
  /** Host of the legacy Reporting Web Service. */
  readonly rwsHost: string;
  /** Token resource of the Reporting Web Service (scope `<resource>/.default`). */
  readonly exchangeResource: string;
}

interface CloudHosts {
  readonly loginHost: string;
  readonly graphHost: string | null;
  readonly rwsHost: string;
  readonly exchangeResource: string;
}

/**
 * docs/office365-apis.md §4. GCC shares the commercial hosts; GCC High and DoD use the `.us`
 * sovereign cloud, where Graph offers no message trace. The RWS hosts of
 * GCC High and DoD are unconfirmed by Microsoft's documentation (some
 * tenants use `outlook.office365.us/ecp/...`), which is why every host is
 * only a default: the input's `url` and `loginUrl` override them.
 */
const clouds: Readonly<Record<PlanType, CloudHosts>> = {
  enterprise_gcc: {
    loginHost: 'login.microsoftonline.com',
    graphHost: 'graph.microsoft.com',
    rwsHost: 'reports.office365.com',
    exchangeResource: 'https://outlook.office365.com',
  },
  gcc: {
    loginHost: 'login.microsoftonline.com',
    graphHost: 'graph.microsoft.com',
    rwsHost: 'reports.office365.com',
    exchangeResource: 'https://outlook.office365.com',
  },
  gcc_high: {
    loginHost: 'login.microsoftonline.us',
    graphHost: null,
    rwsHost: 'reports.office365.us',
    exchangeResource: 'https://outlook.office365.us',
  },
  dod: {
    loginHost: 'login.microsoftonline.us',
    graphHost: null,
    rwsHost: 'outlook-dod.office365.us',
    exchangeResource: 'https://outlook-dod.office365.us',
  },
};

/**
 * The endpoints of a cloud. `loginUrl` (msgtrace's own input key) replaces
 * the authority base — for a private login proxy or the simulator — and its
 * host becomes the known authority.
 */
export function cloudEndpoints(planType: PlanType = 'enterprise_gcc', overrides: { loginUrl?: string } = {}): CloudEndpoints {
  const hosts = clouds[planType];
  if (!overrides.loginUrl) return { ...hosts, loginBase: `https://${hosts.loginHost}` };
  const login = new URL(overrides.loginUrl);
  const loginBase = `${login.origin}${login.pathname}`.replace(/\/+$/, '');
  return { ...hosts, loginHost: login.host, loginBase };
}
