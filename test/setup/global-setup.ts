// Starts what the tests need beyond npm packages. Areas add their services here.
export default async function globalSetup(): Promise<void> {}
