#!/usr/bin/env node
// Runs src/cli.ts through tsx, so `npx voxlink …` works from a checkout without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
