/**
 * Istio writes regexes in RE2 syntax; sluice's proxies run them with JavaScript's RegExp. The
 * proxies compile every regex through the two functions here, and the manifests layer checks
 * with `regexProblem` that they will compile, so a regex the proxies cannot run is an error at
 * load instead of a config every proxy rejects (NACKs) as a whole.
 * Kept free of TypeBox: the proxy bundle imports this module.
 */

/** A StringMatch `regex` (uri, headers, queryParams, authority, CORS origins): a full match, as RE2 in Envoy. */
export function fullMatchRegExp(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

/** A `uriRegexRewrite.match`: every match in the path is replaced. */
export function rewriteRegExp(source: string): RegExp {
  return new RegExp(source, 'g');
}

/** How a regex is used, which decides how the proxy compiles it. */
export type RegexUse = 'match' | 'rewrite';

/**
 * RE2 escapes that JavaScript's RegExp (without the `u` flag) reads as something else: it
 * compiles them without complaint, then matches other strings than the user wrote.
 */
const RE2_ESCAPES: Record<string, string> = {
  A: '\\A (beginning of text) is read as the letter A; use ^',
  z: '\\z (end of text) is read as the letter z; use $',
  Q: '\\Q...\\E (literal text) is read as the letters Q and E; escape each character instead',
  E: '\\Q...\\E (literal text) is read as the letters Q and E; escape each character instead',
  C: '\\C (any byte) is read as the letter C; use .',
  p: '\\p (Unicode class) is read as the letter p; list the characters instead',
  P: '\\P (negated Unicode class) is read as the letter P; list the characters instead',
};

/**
 * Longest regex accepted. RE2 in Envoy bounds a regex's program size; JavaScript's
 * backtracking engine has no such bound, so the length is capped as Istio's validation does.
 */
export const MAX_REGEX_LENGTH = 1024;

/**
 * What the source uses that RE2 does not have or reads differently from JavaScript, or
 * null. JavaScript-only constructs (backreferences, lookaround) are refused too: Istio
 * (RE2) rejects them, and they are what makes a backtracking engine take exponential time.
 */
function re2Only(source: string): string | null {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      const next = source[i + 1] ?? '';
      const hint = RE2_ESCAPES[next];
      if (hint !== undefined) return hint;
      if (next === 'x' && source[i + 2] === '{')
        return '\\x{...} (a code point) is read as x repeated; write \\xHH or \\uHHHH';
      if (!inClass && next >= '1' && next <= '9')
        return 'backreferences such as \\1 are not RE2 syntax (Istio rejects them)';
      i++;
    } else if (inClass) {
      if (c === '[' && /^\[:[a-z]+:\]/.test(source.slice(i)))
        return 'POSIX classes such as [[:alpha:]] are RE2 syntax; write the class out ([A-Za-z])';
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      // A `]` first in the class (after an optional ^) is a literal, as in RE2.
      if (source[i + 1] === '^') i++;
      if (source[i + 1] === ']') i++;
    } else if (c === '(' && source[i + 1] === '?') {
      if (source[i + 2] === 'P' && source[i + 3] === '<')
        return 'named groups are written (?<name>...) in JavaScript, not (?P<name>...)';
      if (/^(?:[=!]|<[=!])/.test(source.slice(i + 2, i + 4)))
        return 'lookahead and lookbehind assertions are not RE2 syntax (Istio rejects them)';
      if (/^[imsU-]/.test(source[i + 2] ?? ''))
        return 'inline flags such as (?i) are RE2 syntax that JavaScript does not support; write both cases ([Aa]) instead';
    }
  }
  return null;
}

/**
 * Why `source` cannot be used as a regex of this use by sluice's proxies, or null when it
 * can: it must compile exactly as the proxy compiles it, and use no RE2 syntax that
 * JavaScript reads differently.
 */
export function regexProblem(source: string, use: RegexUse): string | null {
  if (source.length > MAX_REGEX_LENGTH)
    return `regex is ${source.length} characters long; at most ${MAX_REGEX_LENGTH} are accepted`;
  const hint = re2Only(source);
  try {
    if (use === 'match') fullMatchRegExp(source);
    else rewriteRegExp(source);
  } catch (e) {
    const why = (e as Error).message.replace(/^Invalid regular expression: /, '');
    return `regex ${JSON.stringify(source)} does not compile in JavaScript (${why})${hint ? `: ${hint}` : ''}`;
  }
  return hint === null ? null : `regex ${JSON.stringify(source)}: ${hint}`;
}
