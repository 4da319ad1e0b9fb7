export * from './client/index.js';
export * from './wire/index.js';
