import { xenconsTsup } from '../tsup-config.js';

// The console bench's guest programs are executables of their own (run by simulated domains).
export default xenconsTsup([
  'src/cli.ts',
  'src/benches/console-guest.ts',
  'src/benches/console-guests.ts',
]);
