import { xenconsProject } from '../vitest/project.js';

export default xenconsProject('@xencons/test-utils');
