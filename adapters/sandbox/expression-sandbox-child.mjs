// The sandbox child's entry: loads TypeScript through tsx as cli/msgtrace.mjs
// does, so the child starts wherever msgtrace was started from.
import { register } from 'tsx/esm/api';

register();
await import('./expression-sandbox-child.ts');
