// The npm `macaroon` package ships no types; this declares the part libs/auth uses.
declare module "macaroon" {
  export interface Caveat {
    identifier: Uint8Array;
    location?: string;
    vid?: Uint8Array;
  }
  export interface Macaroon {
    readonly identifier: Uint8Array;
    readonly caveats: Caveat[];
    readonly signature: Uint8Array;
    addFirstPartyCaveat(caveat: string | Uint8Array): void;
    verify(rootKey: Uint8Array, check: (condition: string) => string | null, discharges?: Macaroon[]): void;
    exportJSON(): object;
  }
  export function newMacaroon(o: {
    identifier: string | Uint8Array;
    rootKey: string | Uint8Array;
    location?: string;
    version?: number;
  }): Macaroon;
  export function importMacaroon(obj: string | Uint8Array | object): Macaroon;
}
