/**
 * The smallest `Reflect` metadata API that lets `@peculiar/x509` load.
 *
 * Why: @peculiar/x509 registers its algorithms through tsyringe, and tsyringe
 * refuses to load unless `Reflect.getMetadata` exists (it normally comes from
 * the `reflect-metadata` package, which is not a dependency here). tsyringe
 * only reads constructor parameter types and its own injection tokens, so a
 * per-target map is all it needs. Installed only when nothing else provided
 * the API, and imported (for its side effect) before @peculiar/x509.
 * If `reflect-metadata` becomes a dependency, replace this file with
 * `import 'reflect-metadata'`.
 */

type MetadataKey = string | symbol;
type Target = object;

interface ReflectMetadataApi {
  getMetadata(key: MetadataKey, target: Target, property?: string | symbol): unknown;
  getOwnMetadata(key: MetadataKey, target: Target, property?: string | symbol): unknown;
  defineMetadata(key: MetadataKey, value: unknown, target: Target, property?: string | symbol): void;
  metadata(key: MetadataKey, value: unknown): (target: Target, property?: string | symbol) => void;
}

const store = new WeakMap<Target, Map<string | symbol | undefined, Map<MetadataKey, unknown>>>();

function ownMap(target: Target, property: string | symbol | undefined, create: boolean): Map<MetadataKey, unknown> | undefined {
  let byProperty = store.get(target);
  if (!byProperty) {
    if (!create) return undefined;
    byProperty = new Map();
    store.set(target, byProperty);
  }
  let values = byProperty.get(property);
  if (!values && create) {
    values = new Map();
    byProperty.set(property, values);
  }
  return values;
}

const api: ReflectMetadataApi = {
  getOwnMetadata(key, target, property) {
    return ownMap(target, property, false)?.get(key);
  },
  getMetadata(key, target, property) {
    for (let t: Target | null = target; t; t = Object.getPrototypeOf(t) as Target | null) {
      const values = ownMap(t, property, false);
      if (values?.has(key)) return values.get(key);
    }
    return undefined;
  },
  defineMetadata(key, value, target, property) {
    ownMap(target, property, true)!.set(key, value);
  },
  metadata(key, value) {
    return (target, property) => api.defineMetadata(key, value, target, property);
  },
};

const reflect = Reflect as unknown as Partial<ReflectMetadataApi>;
if (typeof reflect.getMetadata !== 'function') {
  Object.assign(Reflect, api);
}

export {};
