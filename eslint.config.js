import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// drizzle-orm's values are loaded through its CommonJS build in src/db/orm.ts (why: see there);
// an ES import of the package anywhere else brings Node 24's second-long load back.
const DRIZZLE = { group: ['drizzle-orm', 'drizzle-orm/*'], allowTypeImports: true, message: "Import drizzle from src/db/orm.ts (it loads the package's CommonJS build)." };

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.data/', 'coverage/', 'src/db/migrations/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [DRIZZLE] }],
    },
  },
  {
    // Loaded on first use, not with the app (figure 6): Stripe's SDK on the first payment call, pg-boss when a process
    // builds its queue, nodemailer with the first message, sharp with the first image.
    files: ['src/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [DRIZZLE],
          paths: [
            { name: 'stripe', allowTypeImports: true, message: 'Use createStripe() from src/modules/payments/stripe.ts: the SDK loads on first use.' },
            { name: 'pg-boss', allowTypeImports: true, message: 'Use createBoss() from src/modules/notifications/queue.ts: pg-boss loads when a queue is built.' },
            { name: 'nodemailer', allowTypeImports: true, message: 'Use createMailer() from src/modules/notifications/mailer.ts: nodemailer loads with the first message.' },
            { name: 'sharp', allowTypeImports: true, message: 'Use processDesignImage() from src/storage/png.ts: sharp loads with the first image.' },
          ],
        },
      ],
    },
  },
  { files: ['src/db/orm.ts', 'drizzle.config.ts'], rules: { '@typescript-eslint/no-restricted-imports': 'off' } },
);
