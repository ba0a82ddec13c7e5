// SPDX-License-Identifier: AGPL-3.0-only
/**
 * The `parley` command tree (commander): every command, its arguments, options and help. The
 * actions only parse and dispatch; the work lives in commands/.
 */
import { Command } from 'commander';
import {
  parseAddressArg,
  parseAddressOrGroupArg,
  parseDeviceId,
  parseExportFormat,
  parseFileIndex,
  parseGroupArg,
  parseMessageId,
  parsePositiveInt,
  parseSeconds,
  parseServerUrl,
  parseTimer,
  parseUsernameArg,
} from './arguments.js';
import {
  blockCommand,
  blockedCommand,
  deleteCommand,
  editCommand,
  expireCommand,
  reactCommand,
  replyCommand,
  unblockCommand,
} from './commands/actions.js';
import {
  devicesCommand,
  devicesRemoveCommand,
  linkApproveCommand,
  linkCommand,
  registerCommand,
  whoamiCommand,
} from './commands/account.js';
import { downloadCommand, sendFileCommand } from './commands/attachments.js';
import { contactsCommand, verifyCommand } from './commands/contacts.js';
import { exportCommand } from './commands/export.js';
import { parseSettingChanges, presenceCommand, readCommand, receiptsCommand, settingsCommand, typingCommand } from './commands/privacy.js';
import {
  groupAddCommand,
  groupAdminsCommand,
  groupCreateCommand,
  groupInfoCommand,
  groupLeaveCommand,
  groupListCommand,
  groupRemoveCommand,
  groupTitleCommand,
} from './commands/groups.js';
import {
  conversationsCommand,
  historyCommand,
  listenCommand,
  receiveCommand,
  searchCommand,
  sendCommand,
} from './commands/messages.js';
import { CliError, EXIT_CODES_HELP } from './errors.js';
import { type CliRuntime, type GlobalOptions, type ProfileUse, type Session, withClient } from './session.js';

/** The environment variables, as shown in `--help`. */
export const ENVIRONMENT_HELP = `Environment:
  PARLEY_HOME        profile directory, when --profile is not given
  PARLEY_PASSPHRASE  database passphrase, when --passphrase-file is not given
  XDG_DATA_HOME      the default profile is $XDG_DATA_HOME/parley (else ~/.local/share/parley;
                     on macOS ~/Library/Application Support/parley)`;

/** Adds `--profile`, `--json` and `--passphrase-file` to `cmd`; every command takes them. */
function withGlobalOptions(cmd: Command): Command {
  return cmd
    .option('--profile <dir>', 'profile directory (default: $PARLEY_HOME, else the per-user data directory)')
    .option('--json', 'print one JSON object per line on stdout; errors as one JSON line on stderr')
    .option('--passphrase-file <path>', 'read the database passphrase from this file (default: $PARLEY_PASSPHRASE)');
}

const examples = (...lines: string[]): string => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`;

/** `link approve` for the approve subcommand of link, `send` for send. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null && c.parent !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

type Work<A extends unknown[]> = (s: Session, options: Record<string, unknown>, ...args: A) => Promise<void>;

/**
 * A commander action that opens the profile and runs `work` with the command's positional
 * arguments and its options merged with its ancestors' (so `parley --json send …` works too).
 */
function action<A extends unknown[]>(
  rt: CliRuntime,
  work: Work<A>,
  /** Checks that need no profile, so that a usage error never opens one. */
  validate?: (options: Record<string, unknown>, ...args: A) => void,
  use: ProfileUse = { creates: false },
): (...all: unknown[]) => Promise<void> {
  return async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    const options = cmd.optsWithGlobals<Record<string, unknown>>();
    const args = all.slice(0, -2) as A;
    rt.context.command = commandPath(cmd);
    validate?.(options, ...args);
    const globals: GlobalOptions = {
      profile: options.profile as string | undefined,
      json: options.json === true,
      passphraseFile: options.passphraseFile as string | undefined,
    };
    await withClient(rt, globals, use, (s) => work(s, options, ...args));
  };
}

/** Builds the program. Settings of the root (output, exit override) are inherited by every command. */
export function buildProgram(rt: CliRuntime, version: string, configure: (program: Command) => void): Command {
  const program = new Command('parley');
  program
    .description('The command-line client of Parley, an end-to-end encrypted messenger.')
    .version(version, '-V, --version', 'print the version')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .addHelpText('afterAll', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}\n`);
  configure(program);
  withGlobalOptions(program);

  withGlobalOptions(
    program
      .command('register')
      .description('create an account on a relay; this profile becomes its device 1')
      .argument('<username>', '3-32 of a-z, 0-9, _ and ., starting with a letter', parseUsernameArg)
      .requiredOption('--server <url>', "the relay's base URL, e.g. http://localhost:8080", parseServerUrl),
  )
    .addHelpText('after', examples('parley register alice --server http://localhost:8080'))
    .action(
      action(rt, (s, o, username: string) => registerCommand(s, username, o.server as string), undefined, { creates: true }),
    );

  withGlobalOptions(program.command('whoami').description("show this profile's account and device"))
    .addHelpText('after', examples('parley whoami', 'parley whoami --json'))
    .action(action(rt, (s) => whoamiCommand(s)));

  const link = withGlobalOptions(
    program
      .command('link')
      .description('link this profile to an existing account: shows a code to approve on a device of that account')
      .enablePositionalOptions()
      .option('--server <url>', "the relay's base URL, e.g. http://localhost:8080", parseServerUrl)
      .option('--timeout <seconds>', 'how long to wait for the approval (default: the engine’s)', parseSeconds),
  )
    .addHelpText(
      'after',
      examples('parley link --server http://localhost:8080   # on the new device', 'parley link approve parley-link:eyJ2Ijox…   # on a linked device'),
    )
    .action(
      action(
        rt,
        (s, o) => linkCommand(s, { server: o.server as string, timeoutSeconds: o.timeout as number | undefined }),
        (o) => {
          if (typeof o.server !== 'string') {
            throw new CliError('USAGE', 'link needs --server URL (to approve a new device, run parley link approve <code>)');
          }
        },
        { creates: true },
      ),
    );
  withGlobalOptions(
    link
      .command('approve')
      .description('approve a new device from the code it shows, and send it the history')
      .argument('<code>', 'the link code, starting with parley-link:'),
  )
    .addHelpText('after', examples('parley link approve parley-link:eyJ2Ijox…'))
    .action(action(rt, (s, _o, code: string) => linkApproveCommand(s, code)));

  const devices = withGlobalOptions(
    program.command('devices').description("list this account's devices").enablePositionalOptions(),
  )
    .addHelpText('after', examples('parley devices', 'parley devices remove 2'))
    .action(action(rt, (s) => devicesCommand(s)));
  withGlobalOptions(
    devices
      .command('remove')
      .description('remove a device from this account; it can no longer connect')
      .argument('<id>', 'the device id, as `parley devices` lists it', parseDeviceId),
  )
    .addHelpText('after', examples('parley devices remove 2'))
    .action(action(rt, (s, _o, id: number) => devicesRemoveCommand(s, id)));

  withGlobalOptions(
    program
      .command('send')
      .description('send a text message, or a file with --file, to a person or a group')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix' (quoted: # starts a shell comment)", parseAddressOrGroupArg)
      .argument('[text]', 'the text (quote it); - reads it from stdin')
      .option('--file <path>', 'send this file (encrypted on this device; at most the relay\'s limit, 100 MiB by default)')
      .option('--caption <text>', 'the text shown with the file'),
  )
    .addHelpText(
      'after',
      examples(
        'parley send bob@example.org "see you at 8"',
        'echo "hello" | parley send bob -',
        'parley send bob --file ./report.pdf --caption "the Q3 numbers"',
        `parley send '#climbing' "who is in for Saturday?"`,
        `parley send '#climbing' --file ./topo.jpg --caption "the new route"`,
      ),
    )
    .action(
      action(
        rt,
        (s, o, address: string, text: string | undefined) =>
          typeof o.file === 'string' ? sendFileCommand(s, address, o.file, o.caption as string | undefined) : sendCommand(s, address, text!),
        (o, address: string, text: string | undefined) => {
          if (typeof o.file === 'string') {
            if (o.file.length === 0) throw new CliError('USAGE', '--file needs a path');
            if (text !== undefined) throw new CliError('USAGE', 'with --file, give the text as --caption TEXT');
          } else {
            if (o.caption !== undefined) throw new CliError('USAGE', '--caption goes with --file; a text message is the text argument');
            if (text === undefined) throw new CliError('USAGE', 'send needs a text (or - to read stdin), or --file PATH');
          }
        },
      ),
    );

  withGlobalOptions(
    program
      .command('download')
      .description('download a file of a message, check it and save it; an interrupted download resumes')
      .argument('<messageId>', 'the message id, as `history --json` prints it', parseMessageId)
      .option('--out <path>', 'file to write, or a directory to write it into (default: the current directory, under the sender\'s file name)')
      .option('--index <n>', 'which file of the message, from 0', parseFileIndex),
  )
    .addHelpText('after', examples('parley download 0123456789abcdef0123456789abcdef', 'parley download 0123456789abcdef0123456789abcdef --out ~/Downloads/'))
    .action(
      action(rt, (s, o, messageId: string) =>
        downloadCommand(s, messageId, { ...(typeof o.out === 'string' ? { out: o.out } : {}), ...(o.index !== undefined ? { index: o.index as number } : {}) }),
      ),
    );

  withGlobalOptions(
    program
      .command('receive')
      .description('fetch and print queued messages, then exit')
      .option('--wait <seconds>', 'keep waiting until nothing new came for this long', parseSeconds, 0),
  )
    .addHelpText('after', examples('parley receive', 'parley receive --wait 30 --json'))
    .action(action(rt, (s, o) => receiveCommand(s, o.wait as number)));

  withGlobalOptions(program.command('listen').description('print messages as they arrive, until Ctrl-C (SIGINT) or SIGTERM'))
    .addHelpText('after', examples('parley listen', 'parley listen --json | jq .text'))
    .action(action(rt, (s) => listenCommand(s)));

  withGlobalOptions(program.command('conversations').description('list conversations, newest first'))
    .addHelpText('after', examples('parley conversations'))
    .action(action(rt, (s) => conversationsCommand(s)));

  withGlobalOptions(
    program
      .command('history')
      .description('show the messages of a conversation (oldest first)')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .option('--limit <n>', 'show at most the newest n messages', parsePositiveInt)
      .option('--before <id>', 'show the messages before this message id (to page back)', parseMessageId)
      .option('--edits <id>', 'show every version of this (edited) message instead, oldest first', parseMessageId)
      .option('--mark-read', 'then mark the conversation read, as `parley read` does'),
  )
    .addHelpText(
      'after',
      examples(
        'parley history bob@example.org --limit 20',
        'parley history bob --before 0123456789abcdef0123456789abcdef',
        `parley history '#climbing'`,
        'parley history bob --edits 0123456789abcdef0123456789abcdef',
        'parley history bob --mark-read',
      ),
    )
    .action(
      action(rt, (s, o, address: string) =>
        historyCommand(s, address, {
          limit: o.limit as number | undefined,
          before: o.before as string | undefined,
          edits: o.edits as string | undefined,
          markRead: o.markRead === true,
        }),
      ),
    );

  withGlobalOptions(
    program
      .command('read')
      .description('mark every message of a conversation read: read receipts to the senders (unless turned off), and your other devices follow')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg),
  )
    .addHelpText('after', examples('parley read bob@example.org', `parley read '#climbing' --json`))
    .action(action(rt, (s, _o, address: string) => readCommand(s, address)));

  withGlobalOptions(
    program
      .command('receipts')
      .description('show who got and who read your messages in a conversation, per recipient (each member of a group), newest first')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .option('--message <id>', 'only this message (its id, as `history --json` prints it)', parseMessageId)
      .option('--limit <n>', 'the newest n of your messages (default 20)', parsePositiveInt),
  )
    .addHelpText('after', examples('parley receipts bob', `parley receipts '#climbing'`, 'parley receipts bob --message 0123456789abcdef0123456789abcdef --json'))
    .action(
      action(rt, (s, o, address: string) =>
        receiptsCommand(s, address, { ...(typeof o.message === 'string' ? { messageId: o.message } : {}), ...(o.limit !== undefined ? { limit: o.limit as number } : {}) }),
      ),
    );

  withGlobalOptions(
    program
      .command('settings')
      .description('show or change the privacy settings (shared by all your devices): read-receipts, typing, presence')
      .argument('[changes...]', 'pairs of NAME on|off; NAME is read-receipts, typing or presence'),
  )
    .addHelpText(
      'after',
      `
Read receipts are reciprocal: with them off you send none, and you do not see who read your
messages either. With presence off your presence token is withdrawn from the relay and you do
not see your contacts' presence.${examples('parley settings', 'parley settings read-receipts off typing on', 'parley settings presence off --json')}`,
    )
    .action(
      action(
        rt,
        (s, _o, changes: string[]) => settingsCommand(s, changes),
        (_o, changes: string[]) => void parseSettingChanges(changes),
      ),
    );

  withGlobalOptions(
    program
      .command('typing')
      .description('tell a contact or a group you are typing (or stopped, with --stop); sent only to devices online now, at most every 3 s')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .option('--stop', 'say you stopped typing'),
  )
    .addHelpText('after', examples('parley typing bob', 'parley typing bob --stop', "parley typing '#climbing'"))
    .action(action(rt, (s, o, address: string) => typingCommand(s, address, o.stop === true)));

  withGlobalOptions(
    program
      .command('presence')
      .description("list your contacts' presence (online, away, offline, unknown); --away or --online sets this device's")
      .option('--away', 'this device shows as away while connected')
      .option('--online', 'this device shows as online while connected (the default)')
      .option('--rotate-token', 'make a new presence token: contacts you did not message since can no longer see your presence'),
  )
    .addHelpText('after', examples('parley presence', 'parley presence --away', 'parley presence --rotate-token --json'))
    .action(
      action(
        rt,
        (s, o) =>
          presenceCommand(s, {
            ...(o.away === true ? { state: 'away' as const } : o.online === true ? { state: 'online' as const } : {}),
            rotateToken: o.rotateToken === true,
          }),
        (o) => {
          if (o.away === true && o.online === true) throw new CliError('USAGE', '--away and --online exclude each other');
        },
      ),
    );

  const group = withGlobalOptions(
    program
      .command('group')
      .description('groups: create, change and inspect them (send to one with parley send "#title" TEXT)')
      .enablePositionalOptions(),
  ).addHelpText(
    'after',
    `\nA group is named by its title or by its id (or an id prefix of at least 6 hex digits), as
\`parley group list\` shows them; in \`send\` and \`history\` write it with a # in front and quote it
('#climbing'), since # starts a comment in the shell.${examples(
      'parley group create climbing bob carol@example.org',
      'parley group add climbing dave',
      `parley send '#climbing' "Saturday 9:00 at the wall"`,
      'parley group info 3f2a0d --json',
    )}`,
  );
  group.action(() => {
    group.help();
  });
  const groupArg = (cmd: Command): Command => cmd.argument('<group>', 'the group: its title, or its id or an id prefix (6+ hex digits)', parseGroupArg);

  withGlobalOptions(
    group
      .command('create')
      .description('create a group; you are its admin')
      .argument('<title>', 'the title, 1 to 128 characters')
      .argument('[members...]', 'addresses of the other members (user@domain, or user on your own relay)'),
  )
    .addHelpText('after', examples('parley group create climbing bob carol@example.org', 'parley group create "book club"'))
    .action(action(rt, (s, _o, title: string, members: string[]) => groupCreateCommand(s, title, members ?? [])));

  withGlobalOptions(groupArg(group.command('add').description('add members (admins only); they get the group’s whole history of changes')).argument('<addresses...>', 'the members to add'))
    .addHelpText('after', examples('parley group add climbing dave erin@example.org'))
    .action(action(rt, (s, _o, g: string, members: string[]) => groupAddCommand(s, g, members)));

  withGlobalOptions(
    groupArg(group.command('remove').description('remove members (admins only); they can read nothing sent after this')).argument('<addresses...>', 'the members to remove'),
  )
    .addHelpText('after', examples('parley group remove climbing dave'))
    .action(action(rt, (s, _o, g: string, members: string[]) => groupRemoveCommand(s, g, members)));

  withGlobalOptions(groupArg(group.command('leave').description('leave a group; its history stays on this device')))
    .addHelpText('after', examples('parley group leave climbing'))
    .action(action(rt, (s, _o, g: string) => groupLeaveCommand(s, g)));

  withGlobalOptions(
    groupArg(group.command('admins').description('make members admins (--add) or take admin rights away (--remove); admins only'))
      .option('--add <addresses...>', 'members to make admins')
      .option('--remove <addresses...>', 'admins to make plain members'),
  )
    .addHelpText('after', examples('parley group admins climbing --add bob', 'parley group admins climbing --remove carol'))
    .action(
      action(
        rt,
        (s, o, g: string) =>
          groupAdminsCommand(s, g, {
            ...(Array.isArray(o.add) ? { add: o.add as string[] } : {}),
            ...(Array.isArray(o.remove) ? { remove: o.remove as string[] } : {}),
          }),
        (o) => {
          if ((o.add === undefined) === (o.remove === undefined)) throw new CliError('USAGE', 'give either --add ADDRESS… or --remove ADDRESS…');
        },
      ),
    );

  withGlobalOptions(groupArg(group.command('title').description("change a group's title (admins only)")).argument('<title>', 'the new title, 1 to 128 characters'))
    .addHelpText('after', examples('parley group title climbing "climbing (Saturdays)"'))
    .action(action(rt, (s, _o, g: string, title: string) => groupTitleCommand(s, g, title)));

  withGlobalOptions(groupArg(group.command('info').description('show a group: title, id, members and admins')))
    .addHelpText('after', examples('parley group info climbing', 'parley group info 3f2a0d --json'))
    .action(action(rt, (s, _o, g: string) => groupInfoCommand(s, g)));

  withGlobalOptions(group.command('list').description('list the groups this device knows, most recently active first'))
    .addHelpText('after', examples('parley group list', 'parley group list --json'))
    .action(action(rt, (s) => groupListCommand(s)));

  withGlobalOptions(
    program
      .command('edit')
      .description('replace the text of one of your messages (within 24 hours) on every device; the earlier text stays in its edit history')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .argument('<messageId>', 'the message id, as `history --json` prints it', parseMessageId)
      .argument('<text>', 'the new text (quote it); - reads it from stdin'),
  )
    .addHelpText('after', examples('parley edit bob 0123456789abcdef0123456789abcdef "see you at 9, not 8"'))
    .action(action(rt, (s, _o, address: string, id: string, text: string) => editCommand(s, address, id, text)));

  withGlobalOptions(
    program
      .command('delete')
      .description('delete one of your messages for everyone (within 24 hours), or --local: any message, on this device only')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .argument('<messageId>', 'the message id, as `history --json` prints it', parseMessageId)
      .option('--local', 'delete it from this device only; nothing is sent'),
  )
    .addHelpText('after', examples('parley delete bob 0123456789abcdef0123456789abcdef', 'parley delete bob 0123456789abcdef0123456789abcdef --local'))
    .action(action(rt, (s, o, address: string, id: string) => deleteCommand(s, address, id, o.local === true)));

  withGlobalOptions(
    program
      .command('react')
      .description('react to a message with an emoji (replacing your earlier reaction to it), or take your reaction back with --remove')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .argument('<messageId>', 'the message id, as `history --json` prints it', parseMessageId)
      .argument('[emoji]', 'one emoji (at most 32 bytes)')
      .option('--remove', 'take your reaction back'),
  )
    .addHelpText('after', examples('parley react bob 0123456789abcdef0123456789abcdef 👍', 'parley react bob 0123456789abcdef0123456789abcdef --remove'))
    .action(
      action(
        rt,
        (s, o, address: string, id: string, emoji: string | undefined) => reactCommand(s, address, id, emoji, o.remove === true),
        (o, _address: string, _id: string, emoji: string | undefined) => {
          if (emoji === undefined && o.remove !== true) throw new CliError('USAGE', 'react needs an emoji (or --remove to take your reaction back)');
          if (emoji !== undefined && o.remove === true) throw new CliError('USAGE', 'with --remove, give no emoji');
        },
      ),
    );

  withGlobalOptions(
    program
      .command('reply')
      .description('send a text that quotes an earlier message')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .argument('<messageId>', 'the id of the message to quote, as `history --json` prints it', parseMessageId)
      .argument('<text>', 'the text (quote it); - reads it from stdin'),
  )
    .addHelpText('after', examples('parley reply bob 0123456789abcdef0123456789abcdef "yes, 8 is fine"'))
    .action(action(rt, (s, _o, address: string, id: string, text: string) => replyCommand(s, address, id, text)));

  withGlobalOptions(
    program
      .command('expire')
      .description('set the disappearing-message timer of a conversation for both sides (messages are deleted everywhere that long after they were sent); without a time, show it')
      .argument('<address>', "user@domain, user on your own relay, or a group '#title' / '#id-prefix'", parseAddressOrGroupArg)
      .argument('[time]', '30s, 5m, 1h, 1d, 1w (at most 4w), or off', parseTimer),
  )
    .addHelpText('after', examples('parley expire bob 1h', 'parley expire bob off', 'parley expire bob --json'))
    .action(action(rt, (s, _o, address: string, seconds: number | undefined) => expireCommand(s, address, seconds)));

  withGlobalOptions(
    program
      .command('block')
      .description("block a contact on all your devices: their messages are dropped unseen and nothing is sent to them")
      .argument('<address>', 'user@domain, or user on your own relay', parseAddressArg),
  )
    .addHelpText('after', examples('parley block mallory@example.org'))
    .action(action(rt, (s, _o, address: string) => blockCommand(s, address)));

  withGlobalOptions(
    program
      .command('unblock')
      .description('unblock a contact on all your devices')
      .argument('<address>', 'user@domain, or user on your own relay', parseAddressArg),
  )
    .addHelpText('after', examples('parley unblock mallory@example.org'))
    .action(action(rt, (s, _o, address: string) => unblockCommand(s, address)));

  withGlobalOptions(program.command('blocked').description('list the contacts you block'))
    .addHelpText('after', examples('parley blocked', 'parley blocked --json'))
    .action(action(rt, (s) => blockedCommand(s)));

  withGlobalOptions(
    program
      .command('search')
      .description('search the local history (full text, prefix with word*)')
      .argument('<query>', 'words to find')
      .option('--limit <n>', 'show at most n hits', parsePositiveInt),
  )
    .addHelpText('after', examples('parley search "dinner*"', 'parley search invoice --limit 5 --json'))
    .action(action(rt, (s, o, query: string) => searchCommand(s, query, { limit: o.limit as number | undefined })));

  withGlobalOptions(
    program
      .command('verify')
      .description("show the safety number with a contact; --accept trusts the contact's current key")
      .argument('<address>', 'user@domain, or user on your own relay', parseAddressArg)
      .option('--accept', "after comparing the numbers: trust the contact's current key"),
  )
    .addHelpText('after', examples('parley verify bob@example.org', 'parley verify bob@example.org --accept'))
    .action(action(rt, (s, o, address: string) => verifyCommand(s, address, o.accept === true)));

  withGlobalOptions(program.command('contacts').description('list contacts and whether they are verified'))
    .addHelpText('after', examples('parley contacts'))
    .action(action(rt, (s) => contactsCommand(s)));

  withGlobalOptions(
    program
      .command('export')
      .description('write an open archive of every conversation')
      .option('--format <format>', 'jsonl (one message per line) or md (readable)', parseExportFormat, 'jsonl')
      .option('--out <dir>', 'directory to write (default: ./parley-export-YYYY-MM-DD)'),
  )
    .addHelpText('after', examples('parley export', 'parley export --format md --out ~/parley-archive'))
    .action(
      action(rt, (s, o) => exportCommand(s, { format: o.format as 'jsonl' | 'md', out: o.out as string | undefined })),
    );

  return program;
}
