/**
 * Random access to the bytes of one file, and to a folder of named files, on Deno, Bun and Node (through
 * `node:fs/promises`, which all three provide) or from memory (hosts without a file system: a browser page that
 * fetched the files, an edge function with bundled assets). Checkpoint shards are gigabytes: a reader never loads a
 * whole file, it reads the ranges it is asked for.
 */

export class FileAccessError extends Error {
  override name = "FileAccessError";
  readonly code: "not_found" | "io";
  constructor(code: "not_found" | "io", message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** The bytes of one file. `read` returns exactly `length` bytes or throws (a short read is an error, not data). */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
  close(): Promise<void>;
}

/** A folder of files by relative name (a checkpoint folder). */
export interface FileSet {
  readonly label: string;
  exists(name: string): Promise<boolean>;
  readText(name: string): Promise<string>;
  open(name: string): Promise<ByteSource>;
}

export function bytesSource(bytes: Uint8Array, name = "<memory>"): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    read(offset, length) {
      checkRange(name, bytes.byteLength, offset, length);
      return Promise.resolve(bytes.slice(offset, offset + length));
    },
    close: () => Promise.resolve(),
  };
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new FileAccessError("io", `${name}: bad range offset ${offset} length ${length}`);
  }
  if (offset + length > size) {
    throw new FileAccessError("io", `${name}: range ${offset}+${length} runs past the end of the file (${size} bytes)`);
  }
}

type NodeFs = typeof import("node:fs/promises");
let fsModule: Promise<NodeFs> | undefined;
function nodeFs(): Promise<NodeFs> {
  // Imported on first use so that a bundle for a host without a file system never loads it.
  fsModule ??= import("node:fs/promises");
  return fsModule;
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: string })?.code === "ENOENT" ||
    (error as { name?: string })?.name === "NotFound";
}

export async function fileSource(path: string): Promise<ByteSource> {
  const fs = await nodeFs();
  let handle: Awaited<ReturnType<NodeFs["open"]>>;
  try {
    handle = await fs.open(path, "r");
  } catch (cause) {
    const code = isNotFound(cause) ? "not_found" : "io";
    throw new FileAccessError(code, `cannot open ${path}: ${String(cause)}`, { cause });
  }
  const size = (await handle.stat()).size;
  return {
    name: path,
    size,
    async read(offset, length) {
      checkRange(path, size, offset, length);
      const buffer = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0) throw new FileAccessError("io", `${path}: the file ended at ${offset + done}`);
        done += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}

function join(folder: string, name: string): string {
  return folder.endsWith("/") ? folder + name : `${folder}/${name}`;
}

export function directoryFiles(folder: string): FileSet {
  return {
    label: folder,
    async exists(name) {
      const fs = await nodeFs();
      try {
        await fs.stat(join(folder, name));
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw new FileAccessError("io", `cannot stat ${join(folder, name)}: ${String(error)}`, { cause: error });
      }
    },
    async readText(name) {
      const fs = await nodeFs();
      try {
        return await fs.readFile(join(folder, name), "utf8");
      } catch (cause) {
        const code = isNotFound(cause) ? "not_found" : "io";
        throw new FileAccessError(code, `cannot read ${join(folder, name)}: ${String(cause)}`, { cause });
      }
    },
    open: (name) => fileSource(join(folder, name)),
  };
}

export function memoryFiles(files: Record<string, Uint8Array>, label = "<memory>"): FileSet {
  const get = (name: string): Uint8Array => {
    const bytes = files[name];
    if (!bytes) throw new FileAccessError("not_found", `${label} has no file ${name}`);
    return bytes;
  };
  return {
    label,
    exists: (name) => Promise.resolve(name in files),
    readText: (name) => Promise.resolve(new TextDecoder().decode(get(name))),
    open: (name) => Promise.resolve(bytesSource(get(name), `${label}/${name}`)),
  };
}
