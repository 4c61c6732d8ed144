// Lint configuration: typescript-eslint's recommended type-aware rules over src/ and test/;
// the plain-JS scripts get the untyped rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const plainJs = ['scripts/**/*.js', 'bin/**/*.js', 'eslint.config.js'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after'] }] },
      ],
      'no-console': 'error',
    },
  },
  { files: plainJs, ...tseslint.configs.disableTypeChecked },
  {
    files: plainJs,
    languageOptions: {
      parserOptions: { projectService: false },
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
    rules: { 'no-console': 'off' },
  },
  { files: ['src/cli/**/*.ts', 'src/lab/agent.ts'], rules: { 'no-console': 'off' } },
  // The dashboard page's script runs in the browser.
  { files: ['web/**/*.js'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['web/**/*.js'],
    languageOptions: {
      parserOptions: { projectService: false },
      globals: { document: 'readonly', requestAnimationFrame: 'readonly', EventSource: 'readonly', fetch: 'readonly', HTMLElement: 'readonly' },
    },
  },
);
