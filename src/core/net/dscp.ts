/**
 * DSCP code point names as nft prints them (RFC 4594 / 2474 / 3246 / 5865 / 8622): the one table
 * the configuration, the planned rules and the kernel model read. Pure.
 */
export const DSCP_NAMES: Readonly<Record<string, number>> = {
  cs0: 0, df: 0, be: 0, lephb: 1, cs1: 8, af11: 10, af12: 12, af13: 14, cs2: 16, af21: 18, af22: 20, af23: 22,
  cs3: 24, af31: 26, af32: 28, af33: 30, cs4: 32, af41: 34, af42: 36, af43: 38, cs5: 40, va: 44, ef: 46, cs6: 48, cs7: 56,
};
