/**
 * The sandbox's CQL2 (Basic CQL2: comparisons, and/or/not, isNull) over Item properties, in JSON and
 * text. Text is parsed into the JSON form; one evaluator runs both. Anything else is a string error
 * (the 400 reason).
 */
export type Cql2 = { op: string; args: unknown[] };

const COMPARISONS = new Set(["=", "<>", "<", "<=", ">", ">="]);
const LOGICAL = new Set(["and", "or", "not", "isNull"]);

export function checkCql2Json(node: unknown): string | undefined {
  if (!node || typeof node !== "object" || Array.isArray(node)) return "a CQL2 expression must be an object with op and args";
  const { op, args } = node as Cql2;
  if (typeof op !== "string" || !Array.isArray(args)) return "a CQL2 expression must be an object with op and args";
  if (!COMPARISONS.has(op) && !LOGICAL.has(op)) return `CQL2 operator "${op.slice(0, 20)}" is not supported here (Basic CQL2 only)`;
  if (op === "and" || op === "or" || op === "not") {
    if (op === "not" ? args.length !== 1 : args.length < 2) return `"${op}" has the wrong number of arguments`;
    for (const a of args) {
      const problem = checkCql2Json(a);
      if (problem) return problem;
    }
    return undefined;
  }
  if (op === "isNull") return args.length === 1 ? undefined : `"isNull" takes one argument`;
  return args.length === 2 ? undefined : `"${op}" takes two arguments`;
}

function propertyOf(item: Record<string, unknown>, name: string): unknown {
  if (name === "id" || name === "collection" || name === "type") return item[name];
  const props = (item.properties ?? {}) as Record<string, unknown>;
  return name.startsWith("properties.") ? props[name.slice("properties.".length)] : props[name];
}

function valueOf(arg: unknown, item: Record<string, unknown>): unknown {
  if (arg && typeof arg === "object" && !Array.isArray(arg)) {
    const o = arg as { property?: unknown; timestamp?: unknown; date?: unknown };
    if (typeof o.property === "string") return propertyOf(item, o.property);
    if (typeof o.timestamp === "string") return { time: Date.parse(o.timestamp) };
    if (typeof o.date === "string") return { time: Date.parse(`${o.date}T00:00:00Z`) };
  }
  return arg;
}

function compare(op: string, a: unknown, b: unknown): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return false;
  let x = a;
  let y = b;
  const isTime = (v: unknown) => !!v && typeof v === "object" && "time" in (v as object);
  if (isTime(x) || isTime(y)) {
    x = isTime(x) ? (x as { time: number }).time : Date.parse(String(x));
    y = isTime(y) ? (y as { time: number }).time : Date.parse(String(y));
  }
  if (typeof x !== typeof y) return op === "<>";
  const l = x as number | string;
  const r = y as number | string;
  switch (op) {
    case "=": return l === r;
    case "<>": return l !== r;
    case "<": return l < r;
    case "<=": return l <= r;
    case ">": return l > r;
    default: return l >= r;
  }
}

export function evaluateCql2(node: Cql2, item: Record<string, unknown>): boolean {
  const { op, args } = node;
  if (op === "and") return args.every((a) => evaluateCql2(a as Cql2, item));
  if (op === "or") return args.some((a) => evaluateCql2(a as Cql2, item));
  if (op === "not") return !evaluateCql2(args[0] as Cql2, item);
  if (op === "isNull") {
    const v = valueOf(args[0], item);
    return v === null || v === undefined;
  }
  return compare(op, valueOf(args[0], item), valueOf(args[1], item));
}

const TOKEN = /\s*(?:(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|'((?:[^']|'')*)'|"([^"]+)"|(<>|<=|>=|=|<|>)|(\(|\)|,)|([A-Za-z_][A-Za-z0-9_:.-]*))/y;

type Token = { kind: "num" | "str" | "id" | "op" | "punct" | "word"; value: string };

function tokenize(text: string): Token[] | string {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (text.slice(at).trim() === "") break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(text);
    if (!m) return `CQL2 text: cannot read "${text.slice(at, at + 20)}"`;
    at = TOKEN.lastIndex;
    if (m[1] !== undefined) out.push({ kind: "num", value: m[1] });
    else if (m[2] !== undefined) out.push({ kind: "str", value: m[2].replace(/''/g, "'") });
    else if (m[3] !== undefined) out.push({ kind: "id", value: m[3] });
    else if (m[4] !== undefined) out.push({ kind: "op", value: m[4] });
    else if (m[5] !== undefined) out.push({ kind: "punct", value: m[5] });
    else {
      const upper = m[6].toUpperCase();
      out.push(["AND", "OR", "NOT", "IS", "NULL", "TRUE", "FALSE", "TIMESTAMP", "DATE"].includes(upper) ? { kind: "word", value: upper } : { kind: "id", value: m[6] });
    }
  }
  return out;
}

/** Parses Basic CQL2 text into CQL2 JSON; a string result is the error. */
export function parseCql2Text(text: string): Cql2 | string {
  const tokens = tokenize(text);
  if (typeof tokens === "string") return tokens;
  let i = 0;
  const peek = () => tokens[i];
  const fail = (what: string) => `CQL2 text: ${what} at token ${i + 1}${tokens[i] ? ` ("${tokens[i].value.slice(0, 20)}")` : " (end)"}`;
  const operand = (): unknown => {
    const t = tokens[i++];
    if (!t) throw fail("expected a value");
    if (t.kind === "num") return Number(t.value);
    if (t.kind === "str") return t.value;
    if (t.kind === "id") return { property: t.value };
    if (t.kind === "word" && (t.value === "TRUE" || t.value === "FALSE")) return t.value === "TRUE";
    if (t.kind === "word" && (t.value === "TIMESTAMP" || t.value === "DATE")) {
      const open = tokens[i++];
      const value = tokens[i++];
      const close = tokens[i++];
      if (open?.value !== "(" || value?.kind !== "str" || close?.value !== ")") throw fail(`expected ${t.value}('...')`);
      return t.value === "TIMESTAMP" ? { timestamp: value.value } : { date: value.value };
    }
    i--;
    throw fail("expected a value");
  };
  const primary = (): Cql2 => {
    if (peek()?.value === "(") {
      i++;
      const inner = orExpr();
      if (tokens[i++]?.value !== ")") throw fail("expected )");
      return inner;
    }
    const left = operand();
    const t = peek();
    if (t?.kind === "op") {
      i++;
      return { op: t.value, args: [left, operand()] };
    }
    if (t?.kind === "word" && t.value === "IS") {
      i++;
      const negate = peek()?.value === "NOT";
      if (negate) i++;
      if (tokens[i++]?.value !== "NULL") throw fail("expected NULL");
      const isNull: Cql2 = { op: "isNull", args: [left] };
      return negate ? { op: "not", args: [isNull] } : isNull;
    }
    throw fail("expected a comparison (=, <>, <, <=, >, >=) or IS NULL");
  };
  const notExpr = (): Cql2 => {
    if (peek()?.kind === "word" && peek().value === "NOT") {
      i++;
      return { op: "not", args: [notExpr()] };
    }
    return primary();
  };
  const chain = (word: string, next: () => Cql2) => (): Cql2 => {
    const args = [next()];
    while (peek()?.kind === "word" && peek().value === word) {
      i++;
      args.push(next());
    }
    return args.length === 1 ? args[0] : { op: word.toLowerCase(), args };
  };
  const andExpr = chain("AND", notExpr);
  const orExpr = chain("OR", andExpr);
  try {
    const result = orExpr();
    if (i < tokens.length) return fail("unexpected text");
    return result;
  } catch (error) {
    return typeof error === "string" ? error : String(error);
  }
}
