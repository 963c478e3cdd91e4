import { walk, type FsView } from '../context/fs-view.js';
import type { LayerEntry } from '../layer/types.js';

/** A final file system as layer entries, in walk order (what the tar writer and the local exporter take). */
export function* entriesOf(fs: FsView): Generator<LayerEntry> {
  for (const [p, node] of walk(fs, '')) {
    const e: LayerEntry = { path: p, type: node.type, mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime };
    if (node.type === 'file') {
      e.size = node.size;
      e.open = () => fs.open(p);
    }
    if (node.linkname !== undefined) e.linkname = node.linkname;
    if (node.devmajor !== undefined) e.devmajor = node.devmajor;
    if (node.devminor !== undefined) e.devminor = node.devminor;
    yield e;
  }
}
