export {
  attenuateToken,
  MAX_EXPIRES_AT,
  mintToken,
  type Principal,
  TOKEN_KINDS,
  TOKEN_PREFIX,
  TokenError,
  type TokenErrorReason,
  type TokenKind,
  verifyToken,
} from "./tokens.js";
