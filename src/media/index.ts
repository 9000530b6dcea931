export { isPrivateAddress, type Lookup, type ResolvedAddress } from './address-guard';
export { createJobFiles, type JobFiles } from './job-files';
export { InputFetcher, type FetchedInput, type FetchOptions, type InputFetcherOptions } from './input-fetcher';
export type { FetchLike, HttpTimeouts } from './http-source';
export type { InputField } from './errors';
export { sniffMediaType, type SniffedType } from './sniff';
export type { ImageInfo, MediaLimits, InputVideoInfo } from './media-limits';
