#!/usr/bin/env node
// The `xencons-login-users` executable: manage the users file of the `file` backend.
import { usersCliMain } from './users-cli.js';

process.exitCode = await usersCliMain(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
