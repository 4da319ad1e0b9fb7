import { xenconsTsup } from '../../tools/tsup-config.js';

export default xenconsTsup(['src/index.ts', 'src/cli.ts']);
