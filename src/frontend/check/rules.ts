/** The build-check rules kiln knows: BuildKit's (same names, same meaning) and kiln's security rules. */
export interface RuleInfo {
  name: string;
  description: string;
  /** BuildKit's rule page; kiln's own rules have none. */
  url?: string;
  origin: 'buildkit' | 'kiln';
}

const bk = (name: string, description: string): RuleInfo => ({
  name, description, origin: 'buildkit',
  url: `https://docs.docker.com/go/dockerfile/rule/${name.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}/`,
});
const kiln = (name: string, description: string): RuleInfo => ({ name, description, origin: 'kiln' });

export const RULES: readonly RuleInfo[] = [
  bk('StageNameCasing', 'Stage names should be lowercase'),
  bk('FromAsCasing', 'The AS keyword should match the case of the FROM keyword'),
  bk('NoEmptyContinuation', 'Empty continuation lines will become errors in a future release'),
  bk('ConsistentInstructionCasing', 'All commands within the Dockerfile should use the same casing (either upper or lower)'),
  bk('DuplicateStageName', 'Stage names should be unique'),
  bk('ReservedStageName', 'Reserved words should not be used as stage names'),
  bk('JSONArgsRecommended', 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals'),
  bk('MaintainerDeprecated', 'The MAINTAINER instruction is deprecated, use a label instead to define an image author'),
  bk('UndefinedArgInFrom', 'FROM command must use declared ARGs'),
  bk('WorkdirRelativePath', 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes'),
  bk('UndefinedVar', 'Variables should be defined before their use'),
  bk('MultipleInstructionsDisallowed', 'Multiple instructions of the same type should not be used in the same stage'),
  bk('LegacyKeyValueFormat', 'Legacy key/value format with whitespace separator should not be used'),
  bk('RedundantTargetPlatform', 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior'),
  bk('SecretsUsedInArgOrEnv', 'Sensitive data should not be used in the ARG or ENV commands'),
  bk('InvalidDefaultArgInFrom', 'Default value for global ARG results in an empty or invalid base image name'),
  bk('FromPlatformFlagConstDisallowed', 'FROM --platform flag should not use a constant value'),
  bk('CopyIgnoredFile', 'Attempting to Copy file that is excluded by .dockerignore'),
  bk('ExposeProtoCasing', 'Protocol in EXPOSE instruction should be lowercase'),
  bk('ExposeInvalidFormat', 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release'),
  kiln('NoUserInFinalStage', 'The final stage should switch to a non-root USER'),
  kiln('UnpinnedBaseImage', 'Base images should be pinned by digest (and not use :latest)'),
  kiln('SecretInValue', 'ARG, ENV and LABEL values should not contain credentials'),
  kiln('AddRemoteWithoutChecksum', 'ADD of a remote URL should verify it with --checksum'),
];

export const RULE_NAMES: ReadonlySet<string> = new Set(RULES.map((r) => r.name));

export function ruleInfo(name: string): RuleInfo | undefined {
  return RULES.find((r) => r.name === name);
}
