// The few Reflect metadata functions @peculiar/x509's dependency injection (tsyringe) checks for
// and calls, so that it loads without the reflect-metadata package. Import this module before
// "@peculiar/x509". Metadata lives in a WeakMap per target; reads walk the prototype chain.

type Key = unknown;
const store = new WeakMap<object, Map<Key, unknown>>();

function own(target: object, create: boolean): Map<Key, unknown> | undefined {
  let map = store.get(target);
  if (map === undefined && create) {
    map = new Map();
    store.set(target, map);
  }
  return map;
}

const polyfill = {
  defineMetadata(key: Key, value: unknown, target: object): void {
    own(target, true)?.set(key, value);
  },
  getOwnMetadata(key: Key, target: object): unknown {
    return own(target, false)?.get(key);
  },
  hasOwnMetadata(key: Key, target: object): boolean {
    return own(target, false)?.has(key) ?? false;
  },
  getMetadata(key: Key, target: object): unknown {
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t)) {
      const map = own(t, false);
      if (map?.has(key)) return map.get(key);
    }
    return undefined;
  },
  hasMetadata(key: Key, target: object): boolean {
    return polyfill.getMetadata(key, target) !== undefined;
  },
  metadata(key: Key, value: unknown) {
    return (target: object) => polyfill.defineMetadata(key, value, target);
  },
};

const reflect = Reflect as unknown as Record<string, unknown>;
if (typeof reflect.getMetadata !== "function") Object.assign(Reflect, polyfill);
