// ESLint for kiln, run from the repository root by `npm run lint`. Every rule that is off or
// loosened below says why; everything else in `recommendedTypeChecked` applies as is.
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // examples/ compile against the installed package (`import ... from 'kiln'`, i.e. dist/), which
  // lint neither builds nor links; `npm run build` in the example is their check.
  { ignores: ['dist/**', '**/node_modules/**', 'tools/**', 'bench/work/**', '.kiln-demo/**', 'examples/**', 'vitest*.config.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // src/ through tsconfig.json; test/ and conformance/ through their own tsconfig.json (noEmit)
      parserOptions: { projectService: true, tsconfigRootDir: process.cwd() },
    },
    rules: {
      // `_name` marks what a destructuring drops on purpose (`const { range: _r, ...rest } = instr`)
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Ports are async so that a synchronous throw becomes a rejection the caller's catch sees;
      // an async body without await is deliberate there.
      '@typescript-eslint/require-await': 'off',
      // Matching control bytes is the point: printable() and the output sinks neutralise them in
      // hostile text (RUN output, registry replies, file names).
      'no-control-regex': 'off',
      // Its only hits are Node's `path` and `fs/promises` typings, which declare free functions as
      // interface methods; kiln never detaches a method that uses `this`.
      '@typescript-eslint/unbound-method': 'off',
      // Cleanup paths rethrow the caught value (`unknown`) unchanged, and stream callbacks pass it to
      // reject(): wrapping it would lose the KilnError class and fields the caller switches on.
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      // After a failed type guard the value is `never` to TypeScript but real to the user: the error
      // message quotes the hostile value.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNever: true, allowNumber: true }],
    },
  },
  {
    // The format check. Prettier would rewrite 85 of the 221 source files (kiln keeps long lines
    // and one-line guards), so the house style is held by these rules instead.
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      '@stylistic/semi': ['error', 'always'],
      // Inside ternaries and multi-line union types both the rule's indentation and Prettier's are in
      // use (code written in either editor setup); neither is checked there.
      '@stylistic/indent': ['error', 2, { SwitchCase: 1, ignoredNodes: ['ConditionalExpression', 'ConditionalExpression *', 'TSUnionType *', 'TemplateLiteral *'], flatTernaryExpressions: true, offsetTernaryExpressions: true }],
      '@stylistic/comma-dangle': ['error', 'always-multiline'],
      '@stylistic/no-trailing-spaces': 'error',
      '@stylistic/eol-last': 'error',
      '@stylistic/no-multiple-empty-lines': ['error', { max: 1, maxBOF: 0, maxEOF: 0 }],
      '@stylistic/no-tabs': 'error',
      '@stylistic/brace-style': ['error', '1tbs', { allowSingleLine: true }],
      '@stylistic/keyword-spacing': 'error',
      '@stylistic/space-before-blocks': 'error',
      '@stylistic/object-curly-spacing': ['error', 'always'],
      '@stylistic/arrow-parens': ['error', 'always'],
      '@stylistic/space-infix-ops': 'error',
      '@stylistic/comma-spacing': 'error',
      '@stylistic/key-spacing': 'error',
      '@stylistic/max-len': ['error', { code: 250, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreComments: false }],
    },
  },
  {
    files: ['test/**/*.ts', 'conformance/**/*.ts'],
    rules: {
      // Tests read JSON documents (manifests, configs, SPDX, k8s manifests) as they come and assert
      // their shape with expect(); typing each one first would only restate the assertions.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js', '**/*.cjs', '**/*.d.mts'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
  {
    // bin/bundle-loader.cjs: CommonJS so that kiln's entry needs no ES-module loader
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
