/**
 * sign/ — image signatures in cosign's key-based simple-signing format:
 * key files (cosign's encrypted PEM or plain PEM), payloads, the `.sig`
 * manifest, and sign/verify against a registry.
 * May import: errors/, image/, registry/.
 */
export { generateKeyPair, loadPrivateKey, loadPublicKey, readKeyFile } from './keys.js';
export { signImage, verifyImage, resolveDigest, type VerifiedSignature } from './sign.js';
export { signatureTag, payloadBytes, SIMPLE_SIGNING_MEDIA_TYPE, SIGNATURE_ANNOTATION, type SimpleSigningPayload } from './simple-signing.js';
