import { xenconsTsup } from '../../tools/tsup-config.js';

export default xenconsTsup(['src/index.ts', 'src/users-cli-main.ts', 'src/pam-helper.mjs']);
