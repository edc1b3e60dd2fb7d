export {
  attenuateToken,
  MAX_CAVEATS,
  MAX_EXPIRES_AT,
  MAX_TOKEN_LENGTH,
  mintToken,
  type Principal,
  TOKEN_KINDS,
  TOKEN_PREFIX,
  TokenError,
  type TokenErrorReason,
  type TokenKind,
  verifyToken,
} from "./tokens.js";
