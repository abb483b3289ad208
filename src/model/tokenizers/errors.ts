/** The one error class of the tokenizers: `code` says what kind of problem, the message says what and what is allowed. */

export type TokenizerErrorCode =
  | "invalid_data" // a tokenizer file is malformed (truncated protobuf, wrong JSON shape)
  | "unsupported" // a valid file asks for something this implementation does not do (Unigram, NFKC charsmap)
  | "unknown_token" // an id or piece outside the vocabulary
  | "bad_argument" // an option out of range (max_length < 2, …)
  | "limit"; // an input past a documented bound (text length)

export class TokenizerError extends Error {
  override name = "TokenizerError";
  constructor(readonly code: TokenizerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
