import { xenconsTsup } from '../tsup-config.js';

export default xenconsTsup(['src/cli.ts']);
