export { probeVideo, type ProbeOptions, type VideoInfo } from './probe';
export { uploadFile, DEFAULT_UPLOAD_POLICY, type UploadRequest, type UploadOptions, type UploadPolicy } from './upload';
export { contentDisposition, presignGet, publicObjectUrl, MAX_PRESIGN_EXPIRES_S } from './urls';
export {
  VideoStore,
  DEFAULT_INLINE_MAX_BYTES,
  VIDEO_CONTENT_TYPE,
  type StoredVideo,
  type VideoFile,
  type VideoStoreOptions,
} from './video-store';
