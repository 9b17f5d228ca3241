/**
 * The words the synthetic tenant builds its mail from. Subjects deliberately
 * cover what breaks naive collectors: accents, CJK, emoji (incl. ZWJ
 * sequences and astral code points), right-to-left scripts, quotes,
 * backslashes and a tab — every one must survive JSON, NATS and the key.
 */
export const subjects: readonly string[] = [
  'Quarterly Report',
  'Réunion du comité — café à 10h',
  'Überprüfung der Änderungen',
  '会议通知：季度总结',
  '週次レポートのお知らせ',
  '분기별 보고서',
  '🚀 Launch day',
  '👩‍💻 Team sync 🧑🏽‍🤝‍🧑🏻',
  'مرحبا بالعالم — تقرير',
  'שלום, סיכום פגישה',
  'Привет! Счёт №42',
  'Re: "Budget" FY26 \\ draft',
  'Invoice\t#8812 overdue',
  'FW: Ñandú São Paulo façade',
  'Ελληνικά θέματα',
  '',
  'Password reset request',
  'Your parcel is waiting 📦',
  'Mixed: abc 中文 עברית 😀 end',
  'Daily digest',
];

/** The tenant's own domains (mail to/from them is internal). */
export const tenantDomains: readonly string[] = ['contoso.com', 'contoso.onmicrosoft.com', 'sales.contoso.com'];

/** Outside domains, to make external senders and recipients. */
export const externalDomains: readonly string[] = ['fabrikam.com', 'gmail.com', 'example.org', 'northwind.co.uk', 'adatum.de', 'tailspin.jp'];

export const localParts: readonly string[] = [
  'alice',
  'bob',
  'carol.white',
  'dave_ops',
  'Erin.Lopez',
  'frank',
  'grace.hopper',
  'HR',
  'noreply',
  'it-helpdesk',
  'j.o.brien',
  'kim+alerts',
  'sales',
  'Zoë.Adams',
  'finance-team',
];

/** The organization the RWS echoes in each row. */
export const organization = 'contoso.onmicrosoft.com';
