"""The Docker corpus and query from the Sentence Transformers how-to (the seed)."""

QUERY = "How do I restore a Docker volume backup on another host?"

DOCUMENTS = [
    "Create a tar archive from a Docker volume, copy it to the new host, and extract "
    "it into a replacement volume.",
    "Use docker compose pull and docker compose up -d to recreate application "
    "containers after an image update.",
    "List Docker images and tags before promoting a release to production.",
    "Upload a finished build directory to Amazon S3 with aws s3 sync for release "
    "backups.",
    "Inspect container logs with docker logs when a service exits during startup.",
]
