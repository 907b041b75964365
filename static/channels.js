// Sensor channels as the API names them, with Spanish labels and units. Any other numeric
// field a sensor sends is an extra channel shown under its own name.

export const CHANNELS = [
  { key: 'presion', label: 'Presión', unit: 'hPa', color: '#1f5fa8' },
  { key: 'temperatura', label: 'Temperatura', unit: '°C', color: '#b3261e' },
  { key: 'humedad', label: 'Humedad', unit: '%', color: '#0b7285' },
  { key: 'calidad', label: 'Metano (calidad)', unit: '% CH₄', color: '#6a3d9a' },
  { key: 'gas_total_m3', label: 'Contador de gas', unit: 'm³', color: '#1d6b34' },
  { key: 'caudal_gas', label: 'Gas (último mensaje)', unit: 'm³', color: '#2f7d32' },
  { key: 'gas_flow', label: 'Gas por mensaje (antiguo)', unit: 'm³', color: '#52733a' },
  { key: 'caudal_gas_lmin', label: 'Caudal de gas', unit: 'L/min', color: '#00695c' },
  { key: 'caudal_biol', label: 'Biol (último mensaje)', unit: 'm³', color: '#8d5a00' },
  { key: 'biol_total_m3', label: 'Contador de biol', unit: 'm³', color: '#7a4f01' },
];

const BY_KEY = new Map(CHANNELS.map((c) => [c.key, c]));
const EXTRA_COLORS = ['#455a64', '#5d4037', '#37474f', '#4e342e', '#283593', '#4a148c'];
/** Fields of a reading that are not channels. */
const NOT_CHANNELS = new Set(['type', 'ts', 'stage', 'count']);

export function channelInfo(key, index = 0) {
  return BY_KEY.get(key) || { key, label: key, unit: '', color: EXTRA_COLORS[index % EXTRA_COLORS.length], extra: true };
}

/** Channel names present in a reading or bucket, known channels first in their usual order. */
export function channelsIn(obj) {
  const known = CHANNELS.filter((c) => obj[c.key] !== undefined && obj[c.key] !== null).map((c) => c.key);
  const extra = Object.keys(obj)
    .filter((k) => !NOT_CHANNELS.has(k) && !BY_KEY.has(k) && (typeof obj[k] === 'number' || (obj[k] && typeof obj[k] === 'object' && 'avg' in obj[k])))
    .sort();
  return [...known, ...extra];
}

/** Orders a set of channel names: known channels in their usual order, then extras by name. */
export function orderChannels(names) {
  const set = new Set(names);
  return [...CHANNELS.filter((c) => set.has(c.key)).map((c) => c.key), ...[...set].filter((k) => !BY_KEY.has(k)).sort()];
}

const MATERIAL_NAMES = { bovino: 'Estiércol bovino', porcino: 'Estiércol porcino', avicola: 'Estiércol avícola', vegetal: 'Residuos vegetales' };

/** Spanish name of a material type key (the key itself for types configured on site). */
export function materialName(key) {
  return MATERIAL_NAMES[key] || key;
}
