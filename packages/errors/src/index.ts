export { isXenconsError, XenconsError, type XenconsErrorOptions } from './xencons-error.js';
