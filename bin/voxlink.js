#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2 as in `npm start` (docs/security.md "Memory per connection").
// Runs src/cli.ts through tsx, so `npx voxlink …` works from a checkout without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
