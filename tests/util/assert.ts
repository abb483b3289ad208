/**
 * The few assertions the tests use (JSR's @std/assert is not reachable from these machines). Built on node:assert,
 * which Deno, Bun and Node all provide; `assertThrows`/`assertRejects` return the error so tests can check its fields.
 */
import nodeAssert from "node:assert/strict";

export function assert(condition: unknown, message?: string): asserts condition {
  nodeAssert.ok(condition, message);
}

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

export function assertThrows<E extends Error>(fn: () => unknown, errorClass: ErrorClass<E>, includes?: string): E {
  try {
    fn();
  } catch (error) {
    return checkError(error, errorClass, includes);
  }
  throw new nodeAssert.AssertionError({ message: `expected ${errorClass.name} to be thrown` });
}

export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  errorClass: ErrorClass<E>,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    return checkError(error, errorClass, includes);
  }
  throw new nodeAssert.AssertionError({ message: `expected ${errorClass.name} to be rejected` });
}

function checkError<E extends Error>(error: unknown, errorClass: ErrorClass<E>, includes?: string): E {
  if (!(error instanceof errorClass)) {
    throw new nodeAssert.AssertionError({ message: `expected ${errorClass.name}, got ${String(error)}` });
  }
  if (includes !== undefined && !error.message.includes(includes)) {
    throw new nodeAssert.AssertionError({ message: `expected "${includes}" in the message "${error.message}"` });
  }
  return error;
}
