import { constants } from "node:fs";
import { lstat, mkdir, open, realpath, type FileHandle } from "node:fs/promises";
import { dirname, isAbsolute, relative, sep } from "node:path";
import { DatasphereError } from "../errors";

/**
 * File operations below the download folder that never follow a symbolic link: a link planted
 * inside the folder (to a file or to a folder) cannot make a download write outside it. The folder
 * itself may be a link (the user chose it); everything below it must be real folders and files.
 */

/** Creates the folders from `root` down to the folder of `file`, refusing any symbolic link on the way. */
export async function ensureFolderBelow(root: string, file: string): Promise<void> {
  await mkdir(root, { recursive: true });
  const folder = dirname(file);
  const rel = relative(root, folder);
  if (rel.startsWith("..") || isAbsolute(rel)) throw unsafe(`${folder} is not inside the download folder ${root}`);
  let current = root;
  for (const segment of rel === "" ? [] : rel.split(sep)) {
    current = `${current}${sep}${segment}`;
    const info = await lstatOrUndefined(current);
    if (!info) {
      try {
        await mkdir(current);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      continue;
    }
    if (info.isSymbolicLink()) throw unsafe(`${current} is a symbolic link; asset-fetch follows no link below the download folder: remove it or choose another folder`);
    if (!info.isDirectory()) throw new DatasphereError("IO", `${current} is a file where a folder is needed`);
  }
  await checkInside(root, folder);
}

/** Proves that the real path of `folder` is inside the real path of `root`. */
export async function checkInside(root: string, folder: string): Promise<void> {
  const [realRoot, realFolder] = await Promise.all([realpath(root), realpath(folder)]);
  if (realFolder !== realRoot && !realFolder.startsWith(realRoot + sep)) throw unsafe(`${folder} resolves to ${realFolder}, outside the download folder ${realRoot}`);
}

/** Opens a file for writing without following a link at its name: a planted link is an UNSAFE_PATH error. */
export async function openNoFollow(path: string, mode: "create" | "resume"): Promise<FileHandle> {
  const flags = constants.O_NOFOLLOW | (mode === "resume" ? constants.O_RDWR : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC);
  try {
    return await open(path, flags, 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP") throw unsafe(`${path} is a symbolic link; remove it (asset-fetch never writes through a link)`);
    throw error;
  }
}

/** lstat that says "nothing there" instead of throwing. */
export async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Refuses a link at the final name: reading it (skip-if-valid) or replacing it would act on a file the user put there. */
export async function checkNotLink(path: string): Promise<void> {
  const info = await lstatOrUndefined(path);
  if (info?.isSymbolicLink()) throw unsafe(`${path} is a symbolic link; remove it (asset-fetch never writes through a link)`);
}

function unsafe(message: string): DatasphereError {
  return new DatasphereError("UNSAFE_PATH", message);
}
