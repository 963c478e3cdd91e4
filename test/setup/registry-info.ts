/** What the global setup hands to tests through `inject('registry')`. */
export interface RegistryInfo {
  /** host:port of a Distribution registry without auth. */
  anon: string;
  /** host:port of a Distribution registry with htpasswd Basic auth (user/password below). */
  basic: string;
  /** host:port of a Distribution registry with `auth.token` trusting `tokenServer`. */
  token: string;
  /** Base URL of the token server (realm is `${tokenServer}/token`). */
  tokenServer: string;
  /** The one account known to the basic registry and the token server. */
  user: string;
  password: string;
  /** `service` and `issuer` the token registry expects. */
  tokenService: string;
  tokenIssuer: string;
}
