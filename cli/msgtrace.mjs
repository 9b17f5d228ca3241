#!/usr/bin/env node
// The published entry point: loads TypeScript through tsx so `npx msgtrace`
// works straight after `npm ci`, with no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
