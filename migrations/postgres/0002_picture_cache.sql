-- Pictures from MSN (display pictures, custom emoticons) uploaded to the media
-- repository, by their SHA1D: an unchanged picture is never fetched or uploaded twice.
CREATE TABLE picture (
    sha1d      TEXT PRIMARY KEY,
    mxc        TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
