import type { RegistryInfo } from './registry-info.js';

declare module 'vitest' {
  export interface ProvidedContext {
    registry: RegistryInfo;
  }
}
