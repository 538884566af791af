// The RegistryRequestError a registry call ends in (anything else, success included, fails the test).
import { RegistryRequestError } from '../../src/registry/types.js';

export async function failure(promise: Promise<unknown>): Promise<RegistryRequestError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RegistryRequestError) return error;
    throw error;
  }
  throw new Error('expected a RegistryRequestError, got success');
}
