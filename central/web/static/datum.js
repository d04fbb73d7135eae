// WGS-84 (what GPS receivers report) to GCJ-02 (the shifted datum that Chinese tile servers
// draw in): the public "eviltransform" algorithm (github.com/googollee/eviltransform), whose
// constants are those of the Krasovsky 1940 ellipsoid. Outside China a position is unchanged.
// A GCJ-02 position is off by 100-700 m from WGS-84, enough to put a van in the wrong street.

const A = 6378245.0; // Krasovsky 1940 semi-major axis, metres
const EE = 0.00669342162296594323; // its first eccentricity squared

/** The rectangle eviltransform treats as China; nothing outside it is shifted. */
export function outOfChina(lat, lon) {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

function transformLat(x, y) {
  let ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  ret += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  ret += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  ret += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;
  return ret;
}

function transformLon(x, y) {
  let ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  ret += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  ret += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  ret += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;
  return ret;
}

/**
 * A WGS-84 position in GCJ-02.
 * @param {number} lat degrees
 * @param {number} lon degrees
 * @returns {[number, number]} [lat, lon]
 */
export function wgs84ToGcj02(lat, lon) {
  if (outOfChina(lat, lon)) return [lat, lon];
  let dLat = transformLat(lon - 105.0, lat - 35.0);
  let dLon = transformLon(lon - 105.0, lat - 35.0);
  const radLat = (lat / 180.0) * Math.PI;
  let magic = Math.sin(radLat);
  magic = 1 - EE * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180.0) / (((A * (1 - EE)) / (magic * sqrtMagic)) * Math.PI);
  dLon = (dLon * 180.0) / ((A / sqrtMagic) * Math.cos(radLat) * Math.PI);
  return [lat + dLat, lon + dLon];
}

/**
 * The function that turns a WGS-84 position into the map's datum.
 * @param {string} crs "wgs84" or "gcj02"
 * @returns {(lat: number, lon: number) => [number, number]}
 */
export function toMapDatum(crs) {
  return crs === "gcj02" ? wgs84ToGcj02 : (lat, lon) => [lat, lon];
}
