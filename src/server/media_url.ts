/**
 * The media-URL policy of the chat endpoint: where the bytes of an `image_url`/`video_url` may come from. The
 * server never fetches from the network. Accepted: `data:` URLs (base64), and — only when the app is given a
 * `mediaRoot` — `file:` URLs or absolute paths inside that folder (symlinks resolved, no `..` escapes).
 */
import { ApiError, badRequest } from "./errors.ts";

export interface MediaUrlPolicy {
  /** Folder whose files requests may name; absent = local files are refused. */
  mediaRoot?: string;
  /** Largest media payload, bytes. */
  maxMediaBytes: number;
}

export async function resolveMediaUrl(url: string, policy: MediaUrlPolicy, param: string): Promise<Uint8Array> {
  if (url.startsWith("data:")) return decodeDataUrl(url, policy, param);
  if (/^https?:/i.test(url)) {
    throw badRequest("remote_media_refused", "remote media URLs are not fetched; send the bytes as a data: URL", param);
  }
  const path = url.startsWith("file:") ? decodeURIComponent(new URL(url).pathname) : url;
  if (!policy.mediaRoot) {
    throw badRequest("local_media_refused", "this server reads no local files (no mediaRoot is configured)", param);
  }
  const fs = await import("node:fs/promises");
  let real: string, root: string;
  try {
    [real, root] = await Promise.all([fs.realpath(path), fs.realpath(policy.mediaRoot)]);
  } catch {
    throw new ApiError(404, "invalid_request_error", "media_not_found", `no media file at ${url}`, param);
  }
  if (real !== root && !real.startsWith(root.endsWith("/") ? root : `${root}/`)) {
    throw badRequest("local_media_refused", `${url} is outside the media root`, param);
  }
  const stat = await fs.stat(real);
  if (stat.size > policy.maxMediaBytes) {
    throw new ApiError(
      413,
      "invalid_request_error",
      "media_too_large",
      `${url} has ${stat.size} bytes, over ${policy.maxMediaBytes}`,
      param,
    );
  }
  return new Uint8Array(await fs.readFile(real));
}

function decodeDataUrl(url: string, policy: MediaUrlPolicy, param: string): Uint8Array {
  const comma = url.indexOf(",");
  const header = url.slice(5, comma);
  if (comma < 0 || !/;base64$/i.test(header)) {
    throw badRequest("invalid_media_url", "a data: URL must be base64 (data:<type>;base64,<bytes>)", param);
  }
  const payload = url.slice(comma + 1);
  if (payload.length * 0.75 > policy.maxMediaBytes) {
    throw new ApiError(
      413,
      "invalid_request_error",
      "media_too_large",
      `the media payload exceeds ${policy.maxMediaBytes} bytes`,
      param,
    );
  }
  try {
    const binary = atob(payload);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    throw badRequest("invalid_media_url", "the data: URL is not valid base64", param);
  }
}
