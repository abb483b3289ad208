/**
 * Reads a file that ships inside this package (`wasm/*.wasm`, `shaders/*.wgsl`) on Deno, Bun and Node, by path
 * relative to the package root, without any network access.
 */

// This file sits at src/util/ (and at dist/util/ once built): the package root is two folders up in both layouts.
const PACKAGE_ROOT = new URL("../../", import.meta.url);

export class PackageFileError extends Error {
  override name = "PackageFileError";
}

export async function readPackageFile(path: string): Promise<Uint8Array<ArrayBuffer>> {
  const url = new URL(path, PACKAGE_ROOT);
  try {
    if (url.protocol !== "file:") {
      // A bundle served over http(s) by its own host (a browser page, an edge deployment): same origin only.
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    }
    const deno = (globalThis as { Deno?: { readFile(url: URL): Promise<Uint8Array<ArrayBuffer>> } }).Deno;
    if (deno) return await deno.readFile(url);
    const fs = await import("node:fs/promises");
    return new Uint8Array(await fs.readFile(url));
  } catch (cause) {
    throw new PackageFileError(`cannot read the package file ${path} at ${url.href}: ${String(cause)}`, { cause });
  }
}

export async function readPackageText(path: string): Promise<string> {
  return new TextDecoder().decode(await readPackageFile(path));
}
